//! Time in the generated history: China Standard Time (UTC+8, no daylight saving), calendar days, office hours and
//! working days.
//!
//! Instants are Unix seconds (`i64`); days are "epoch days in China time" (day 0 is 1970-01-01 in Beijing). Working days
//! skip Saturdays and Sundays only: public holidays are data, not code (domain.md section 7), and a generator has no
//! holiday calendar to read, so the 7-working-day decisions it plants keep a margin instead (at most 5).

use caselink_proto::Timestamp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use time::{Date, Month};

/// China Standard Time offset from UTC, in seconds.
pub(crate) const CST: i64 = 8 * 3600;
/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The days the history covers, `first..=last` (China time), `last` being the `end` parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) first: i64,
    pub(crate) last: i64,
}

impl Span {
    /// Days in the span.
    pub(crate) fn days(&self) -> i64 {
        self.last - self.first + 1
    }

    /// The latest instant an event may carry: the last second of the end day in China time.
    pub(crate) fn latest(&self) -> i64 {
        (self.last + 1) * DAY - CST - 1
    }

    /// A uniformly random day in `lo..=hi`, both clamped into the span.
    pub(crate) fn day_between(&self, rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
        let lo = lo.clamp(self.first, self.last);
        let hi = hi.clamp(lo, self.last);
        rng.random_range(lo..=hi)
    }

    /// A random day at which a story needing `need` days can start and still end inside the span (the first day when
    /// the span is shorter than that).
    pub(crate) fn start_for(&self, rng: &mut ChaCha8Rng, need: i64) -> i64 {
        self.day_between(rng, self.first, self.last - need)
    }
}

/// The epoch day (China time) of a calendar date.
pub(crate) fn day_of_date(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
}

/// The calendar date of an epoch day.
pub(crate) fn date_of_day(day: i64) -> Date {
    let julian = i32::try_from(day + UNIX_EPOCH_JULIAN_DAY).unwrap_or(i32::MAX);
    Date::from_julian_day(julian).unwrap_or(Date::MAX)
}

/// The epoch day (China time) an instant falls on.
pub(crate) fn day_of(t: i64) -> i64 {
    (t + CST).div_euclid(DAY)
}

/// The calendar year of an instant, China time.
pub(crate) fn year_of(t: i64) -> i32 {
    date_of_day(day_of(t)).year()
}

/// `YYYYMMDD` of an instant, China time (ticket and petition numbers carry it).
pub(crate) fn yyyymmdd(t: i64) -> String {
    let d = date_of_day(day_of(t));
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `YYYY年M月D日` of an instant, China time, for summaries.
pub(crate) fn chinese_date(t: i64) -> String {
    let d = date_of_day(day_of(t));
    format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day())
}

/// Monday is 0. 1970-01-01 was a Thursday.
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Whether a day is a working day (Monday to Friday; see the module note on holidays).
pub(crate) fn is_working_day(day: i64) -> bool {
    weekday(day) < 5
}

/// The instant `secs` seconds into `day`, China time.
pub(crate) fn at(day: i64, secs: i64) -> i64 {
    day * DAY + secs - CST
}

/// A random moment of office hours (08:30-17:30) on `day`, or on the next working day if `day` is not one.
pub(crate) fn office(rng: &mut ChaCha8Rng, mut day: i64) -> i64 {
    while !is_working_day(day) {
        day += 1;
    }
    at(day, rng.random_range(30_600..63_000))
}

/// A random waking moment (07:30-22:30) on `day`: when people call, post or write.
pub(crate) fn waking(rng: &mut ChaCha8Rng, day: i64) -> i64 {
    at(day, rng.random_range(27_000..81_000))
}

/// The day `n` working days after `day`.
pub(crate) fn working_days_after(mut day: i64, n: i64) -> i64 {
    let mut left = n;
    while left > 0 {
        day += 1;
        if is_working_day(day) {
            left -= 1;
        }
    }
    day
}

/// An office-hours moment `lo..=hi` working days after the day of `t` (always later than `t` when `lo >= 1`).
pub(crate) fn office_after_working_days(rng: &mut ChaCha8Rng, t: i64, lo: i64, hi: i64) -> i64 {
    let n = rng.random_range(lo..=hi);
    office(rng, working_days_after(day_of(t), n))
}

/// An office-hours moment `lo..=hi` calendar days after the day of `t` (moved to the next working day if it falls on
/// a weekend; always later than `t` when `lo >= 1`).
pub(crate) fn office_after_days(rng: &mut ChaCha8Rng, t: i64, lo: i64, hi: i64) -> i64 {
    let n = rng.random_range(lo..=hi);
    office(rng, day_of(t) + n)
}

/// Minutes later, for steps taken on the spot (a ticket dispatched right after it is created).
pub(crate) fn minutes_after(rng: &mut ChaCha8Rng, t: i64, lo: i64, hi: i64) -> i64 {
    t + 60 * rng.random_range(lo..=hi)
}

/// The proto timestamp of an instant.
pub(crate) fn timestamp(t: i64) -> Timestamp {
    Timestamp {
        seconds: t,
        nanos: 0,
    }
}

/// Parses `YYYY-MM-DD`.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.trim().splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// The same calendar day `years` years earlier (28 February for a 29 February that does not exist then).
pub(crate) fn years_before(date: Date, years: i32) -> Option<Date> {
    let year = date.year() - years;
    Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, date.month(), date.day() - 1))
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn days_and_dates_round_trip_in_china_time() {
        let d = parse_date("2026-06-30").unwrap();
        let day = day_of_date(d);
        assert_eq!(date_of_day(day), d);
        // 2026-06-30 00:00 in Beijing is 2026-06-29 16:00 UTC.
        assert_eq!(at(day, 0), 1_782_748_800);
        assert_eq!(day_of(at(day, 0)), day);
        assert_eq!(day_of(at(day, DAY - 1)), day);
        assert_eq!(yyyymmdd(at(day, 3600)), "20260630");
    }

    #[test]
    fn weekends_are_not_working_days() {
        // 2026-06-27 is a Saturday, 2026-06-29 a Monday.
        let saturday = day_of_date(parse_date("2026-06-27").unwrap());
        assert!(!is_working_day(saturday));
        assert!(!is_working_day(saturday + 1));
        assert!(is_working_day(saturday + 2));
        assert_eq!(working_days_after(saturday - 1, 1), saturday + 2);
        assert_eq!(working_days_after(saturday - 1, 5), saturday + 6);
    }

    #[test]
    fn office_moments_fall_on_working_days_in_office_hours() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let saturday = day_of_date(parse_date("2026-06-27").unwrap());
        for _ in 0..100 {
            let t = office(&mut rng, saturday);
            assert_eq!(day_of(t), saturday + 2);
            let secs = t + CST - (saturday + 2) * DAY;
            assert!((30_600..63_000).contains(&secs));
        }
    }

    #[test]
    fn leap_day_goes_back_to_the_28th() {
        let d = parse_date("2028-02-29").unwrap();
        assert_eq!(years_before(d, 1), parse_date("2027-02-28"));
        assert_eq!(years_before(d, 4), parse_date("2024-02-29"));
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("2026/06/30").is_none());
    }
}
