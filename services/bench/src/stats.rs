//! Pure arithmetic of the benchmark: sizes on the command line, rates, medians, percentiles, time interpolation.

use std::time::Duration;

/// Parses an event count such as `100k`, `1M`, `10M`, `2.5M` or `25000` (suffixes are decimal: k = 1,000).
pub fn parse_count(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let (number, factor) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1e3),
        Some((i, 'm' | 'M')) => (&t[..i], 1e6),
        Some((i, 'g' | 'G' | 'b' | 'B')) => (&t[..i], 1e9),
        _ => (&t[..], 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a count like 100k, 1M or 25000"))?;
    let count = (value * factor).round();
    if !(1.0..=1e12).contains(&count) {
        return Err(format!("{text:?} is outside 1..10^12"));
    }
    Ok(count as u64)
}

/// A count done in a time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Throughput {
    pub count: u64,
    pub seconds: f64,
}

impl Throughput {
    /// `count` in `elapsed`.
    pub fn new(count: u64, elapsed: Duration) -> Throughput {
        Throughput {
            count,
            seconds: elapsed.as_secs_f64(),
        }
    }

    /// Per second.
    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.seconds.max(1e-9)
    }
}

/// Events (or records, or calls) per second.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// The `p`-th percentile (0..=100) of `sorted` by the nearest-rank method: the smallest value such that at least
/// `p`% of the values are at or below it. `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Latencies in milliseconds, summarised.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Summarises latencies (any order). `None` when there are none.
pub fn summarise(latencies: &[Duration]) -> Option<LatencySummary> {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    Some(LatencySummary {
        samples: ms.len(),
        p50_ms: percentile(&ms, 50.0)?,
        p99_ms: percentile(&ms, 99.0)?,
        max_ms: *ms.last()?,
    })
}

/// Progress samples `(seconds since start, count done)`, ascending in both: the time at which `target` was reached,
/// interpolated linearly between the two samples around it. `None` if it was never reached.
pub fn time_at(samples: &[(f64, u64)], target: u64) -> Option<f64> {
    let i = samples.iter().position(|&(_, n)| n >= target)?;
    if i == 0 {
        return Some(samples[0].0);
    }
    let (t0, n0) = samples[i - 1];
    let (t1, n1) = samples[i];
    let share = (target - n0) as f64 / (n1 - n0).max(1) as f64;
    Some(t0 + share * (t1 - t0))
}

/// The rate between two progress marks, from progress samples; `None` if either was not reached or no time passed.
pub fn rate_between(samples: &[(f64, u64)], from: u64, to: u64) -> Option<f64> {
    let t0 = time_at(samples, from)?;
    let t1 = time_at(samples, to)?;
    (t1 > t0).then(|| (to - from) as f64 / (t1 - t0))
}

/// The store size performance.md compares the rate at 10M stored events with: cost growth is the rate at 10M ÷ at
/// 100k.
pub const GROWTH_BASE: u64 = 100_000;

/// How a write rate holds up as its store fills, from progress samples over `total` events: the rate over the last
/// tenth ÷ the rate at the start. The start runs from the first sample that shows progress (one-off start-up costs
/// excluded) over [`GROWTH_BASE`] events when `total` is at least ten times that (the store as full as a 100k run's:
/// at 10M events, performance.md's 10M ÷ 100k within one run), over a tenth of `total` for a shorter stream.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Growth {
    /// The start: from this count, over this many events.
    pub start_from: u64,
    pub start_events: u64,
    pub start_per_second: f64,
    pub last_tenth_per_second: f64,
}

impl Growth {
    /// `None` if the samples do not resolve both spans, or the start would reach into the last tenth.
    pub fn of(samples: &[(f64, u64)], total: u64) -> Option<Growth> {
        let &(_, start_from) = samples.iter().find(|(_, n)| *n > 0)?;
        let tenth = total / 10;
        let start_events = if total >= 10 * GROWTH_BASE {
            GROWTH_BASE
        } else {
            tenth
        };
        if start_from + start_events > total - tenth {
            return None;
        }
        Some(Growth {
            start_from,
            start_events,
            start_per_second: rate_between(samples, start_from, start_from + start_events)?,
            last_tenth_per_second: rate_between(samples, total - tenth, total)?,
        })
    }

    /// Last tenth ÷ start.
    pub fn ratio(&self) -> f64 {
        self.last_tenth_per_second / self.start_per_second
    }

    /// Whether the start is performance.md's 100k (a stream of 1M events or more), not a short stream's tenth.
    pub fn as_defined(&self) -> bool {
        self.start_events == GROWTH_BASE
    }

    /// For progress notes: "first 100,000 events 43,907/s, last tenth 36,209/s".
    pub fn describe(&self) -> String {
        format!(
            "{} {}/s, last tenth {}/s",
            self.start_name(),
            thousands(self.start_per_second),
            thousands(self.last_tenth_per_second)
        )
    }

    /// What the start was, for notes: "first 100,000 events" or "first tenth".
    pub fn start_name(&self) -> String {
        if self.as_defined() {
            format!("first {} events", thousands(GROWTH_BASE as f64))
        } else {
            "first tenth".into()
        }
    }
}

/// `1234567.8` → `"1,234,568"`.
pub fn thousands(value: f64) -> String {
    let negative = value < 0.0;
    let digits = format!("{:.0}", value.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if negative {
        format!("-{out}")
    } else {
        out
    }
}

/// A duration for people: `45 s`, `12 min`, `2.5 h`.
pub fn human_duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 90.0 * 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_compares_the_last_tenth_with_the_first_100k_once_the_stream_is_ten_times_longer() {
        // 1M events: 100k/s over the first 100k (1 s), then 50k/s to the end (18 s).
        let long = [(0.0, 0), (1.0, 100_000), (19.0, 1_000_000)];
        let g = Growth::of(&long, 1_000_000).expect("resolved");
        assert_eq!((g.start_from, g.start_events), (100_000, GROWTH_BASE));
        assert!(g.as_defined());
        assert_eq!(g.start_name(), "first 100,000 events");
        // 50k/s both from 100k on and over the last tenth.
        assert!((g.ratio() - 1.0).abs() < 1e-9, "{g:?}");
        let long = [(0.0, 1_000), (1.0, 101_000), (19.0, 1_000_000)];
        let g = Growth::of(&long, 1_000_000).expect("resolved");
        assert!((g.start_per_second - 100_000.0).abs() < 1e-6, "{g:?}");
        assert!(
            (g.last_tenth_per_second - 899_000.0 / 18.0).abs() < 1e-6,
            "{g:?}"
        );
        assert_eq!(
            g.describe(),
            "first 100,000 events 100,000/s, last tenth 49,944/s"
        );
        // 500k events: too short for 100k against the end; a tenth (50k) instead.
        let short = [(0.0, 1_000), (1.0, 51_000), (10.0, 500_000)];
        let g = Growth::of(&short, 500_000).expect("resolved");
        assert_eq!(
            (g.start_events, g.start_name().as_str()),
            (50_000, "first tenth")
        );
        assert!(!g.as_defined());
        assert!((g.start_per_second - 50_000.0).abs() < 1e-6, "{g:?}");
    }

    #[test]
    fn growth_starts_at_the_first_progress_seen() {
        // Nothing for 0.8 s (start-up), 20k seen at 1.0 s, then 100k/s; the last tenth at 50k/s.
        let samples = [
            (0.0, 0),
            (0.8, 0),
            (1.0, 20_000),
            (2.0, 120_000),
            (18.0, 900_000),
            (20.0, 1_000_000),
        ];
        let g = Growth::of(&samples, 1_000_000).expect("resolved");
        assert_eq!((g.start_from, g.start_events), (20_000, GROWTH_BASE));
        assert!(
            (g.start_per_second - 100_000.0).abs() < 1e-6,
            "start-up not counted: {g:?}"
        );
        assert!((g.ratio() - 0.5).abs() < 1e-9, "{g:?}");
        // A first look that saw most of a short stream: its start would reach the last tenth.
        assert_eq!(Growth::of(&[(0.0, 25_000), (1.0, 30_000)], 30_000), None);
        // No progress at all.
        assert_eq!(Growth::of(&[(0.0, 0), (1.0, 0)], 30_000), None);
    }

    #[test]
    fn counts_accept_decimal_suffixes_and_plain_numbers() {
        assert_eq!(parse_count("100k"), Ok(100_000));
        assert_eq!(parse_count("1M"), Ok(1_000_000));
        assert_eq!(parse_count("10M"), Ok(10_000_000));
        assert_eq!(parse_count("2.5m"), Ok(2_500_000));
        assert_eq!(parse_count("25000"), Ok(25_000));
        assert_eq!(parse_count("1_000"), Ok(1_000));
        assert_eq!(parse_count(" 7K "), Ok(7_000));
    }

    #[test]
    fn counts_reject_garbage_zero_and_negative() {
        assert!(parse_count("lots").is_err());
        assert!(parse_count("").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_count("-5k").is_err());
        assert!(parse_count("k").is_err());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn percentile_uses_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten values: the 99th percentile is the largest, the median the fifth.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 99.0), Some(10.0));
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
    }

    #[test]
    fn summary_sorts_and_reports_milliseconds() {
        let lat: Vec<Duration> = [5u64, 1, 3, 2, 4]
            .iter()
            .map(|&m| Duration::from_millis(m))
            .collect();
        let s = summarise(&lat).expect("not empty");
        assert_eq!(s.samples, 5);
        assert!((s.p50_ms - 3.0).abs() < 1e-9);
        assert!((s.p99_ms - 5.0).abs() < 1e-9);
        assert!((s.max_ms - 5.0).abs() < 1e-9);
        assert!(summarise(&[]).is_none());
    }

    #[test]
    fn progress_interpolates_between_samples() {
        let samples = [(0.0, 0), (1.0, 100), (2.0, 300), (4.0, 400)];
        assert_eq!(time_at(&samples, 0), Some(0.0));
        assert_eq!(time_at(&samples, 50), Some(0.5));
        assert_eq!(time_at(&samples, 200), Some(1.5));
        assert_eq!(time_at(&samples, 400), Some(4.0));
        assert_eq!(time_at(&samples, 401), None);
        assert_eq!(rate_between(&samples, 100, 300), Some(200.0));
        assert_eq!(rate_between(&samples, 300, 400), Some(50.0));
        assert_eq!(rate_between(&samples, 300, 500), None);
    }

    #[test]
    fn numbers_and_durations_read_well() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(-4700.0), "-4,700");
        assert_eq!(human_duration(45.0), "45 s");
        assert_eq!(human_duration(720.0), "12 min");
        assert_eq!(human_duration(9000.0), "2.5 h");
    }
}
