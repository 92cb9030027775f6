//! The holiday calendar and statutory day counting (spec/domain.md section 7).
//!
//! China's working days are not "Monday to Friday": public holidays take weekdays off, and the days around them are
//! shuffled (调休), so some Saturdays and Sundays are working days. The calendar is data, one section per year, from
//! the State Council General Office's yearly notice (`calendars/cn.toml`, embedded; [`HolidayCalendar::china`]). A year
//! the data does not list is *not covered*: asking about it is [`CalendarError::YearNotCovered`], never a silent guess.
//!
//! Counting, always on China's civil date (UTC+8, no daylight saving; [`CHINA_OFFSET`]):
//!
//! | period | deadline |
//! | --- | --- |
//! | [`Period::Hours`]`(n)` | exactly `n` hours after the triggering instant; holidays do not matter |
//! | [`Period::Days`]`(n)` | count `n` calendar days from the day after the trigger; the deadline is the end (24:00) of the last day, and when that day is not a working day, the end of the next working day |
//! | [`Period::WorkingDays`]`(n)` | count `n` working days from the day after the trigger (weekends and holidays skipped, adjusted working weekends counted); the end of the `n`-th |
//!
//! "The end of day D" is returned as the instant 00:00 of D + 1 in China time: a move at or after it is late.
//!
//! ```
//! use caselink_workflow::calendar::{deadline, HolidayCalendar, Period};
//! use time::macros::datetime;
//!
//! let cn = HolidayCalendar::china();
//! // Reported on Saturday 25 January 2025: day 3 is 28 January, the first day of the Spring Festival holiday, so the
//! // deadline moves to the end of the first working day after it, Wednesday 5 February.
//! let due = deadline(&cn, datetime!(2025-01-25 10:00 +8), Period::Days(3)).unwrap();
//! assert_eq!(due, datetime!(2025-02-06 00:00 +8));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use time::macros::offset;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

/// China Standard Time, the offset every day count is made in.
pub const CHINA_OFFSET: UtcOffset = offset!(+8);

/// The embedded official schedule (2025 and 2026).
const CHINA_TOML: &str = include_str!("../calendars/cn.toml");

/// A holiday must not be longer than this: guards against a mistyped month in the data.
const MAX_HOLIDAY_DAYS: i64 = 15;

/// What goes wrong with calendar data or a count over it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The TOML is malformed or has an unknown or missing field (the message names it).
    #[error("holiday calendar data: {0}")]
    Parse(String),
    /// A value is well-formed TOML but not a valid calendar.
    #[error("holiday calendar data: {field}: {why}")]
    Invalid {
        /// Path of the offending value, e.g. `years.2025.holidays[1].work[0]`.
        field: String,
        why: String,
    },
    /// The calendar has no data for this year; add the year's State Council notice.
    #[error("the holiday calendar does not cover {year}: add that year's State Council holiday notice to the calendar data")]
    YearNotCovered { year: i32 },
    /// The count ran past the range of dates `time` represents.
    #[error("date out of range")]
    OutOfRange,
}

/// What a given date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind<'a> {
    /// Monday to Friday, no holiday.
    Weekday,
    /// Saturday or Sunday, not adjusted.
    Weekend,
    /// A day off of the named holiday (法定节假日 or a day taken off around it).
    Holiday(&'a str),
    /// A Saturday or Sunday that is a working day because of the named holiday (调休上班).
    AdjustedWorkingDay(&'a str),
}

impl DayKind<'_> {
    /// Whether offices work on it.
    pub fn is_working(self) -> bool {
        matches!(self, DayKind::Weekday | DayKind::AdjustedWorkingDay(_))
    }
}

/// A statutory period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Exactly this many hours after the trigger ("24 小时内").
    Hours(u32),
    /// Calendar days from the day after the trigger, the end extended to a working day ("3 日内").
    Days(u32),
    /// Working days from the day after the trigger ("7 个工作日内").
    WorkingDays(u32),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Hours(n) => write!(f, "{n} hours"),
            Period::Days(n) => write!(f, "{n} days"),
            Period::WorkingDays(n) => write!(f, "{n} working days"),
        }
    }
}

/// Public holidays and adjusted working days, per covered year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayCalendar {
    /// Covered year → the notice it comes from.
    years: BTreeMap<i32, String>,
    /// Day off → holiday name.
    off: BTreeMap<Date, String>,
    /// Adjusted working weekend day → holiday name.
    working: BTreeMap<Date, String>,
}

// --- the data format -------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    years: BTreeMap<String, RawYear>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    source: String,
    holidays: Vec<RawHoliday>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    from: toml::value::Datetime,
    to: toml::value::Datetime,
    #[serde(default)]
    work: Vec<toml::value::Datetime>,
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> CalendarError {
    CalendarError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// A TOML local date (`2025-01-28`, no time, no offset) as a `time::Date`.
fn local_date(value: &toml::value::Datetime, field: &str) -> Result<Date, CalendarError> {
    match (value.date, value.time, value.offset) {
        (Some(d), None, None) => {
            let month =
                Month::try_from(d.month).map_err(|_| invalid(field, "not a valid month"))?;
            Date::from_calendar_date(i32::from(d.year), month, d.day)
                .map_err(|_| invalid(field, format!("{value} is not a valid date")))
        }
        _ => Err(invalid(
            field,
            format!("{value} is not a plain date (write it as YYYY-MM-DD, no time, no offset)"),
        )),
    }
}

fn is_weekend(date: Date) -> bool {
    matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

impl HolidayCalendar {
    /// China's official schedule as shipped (`calendars/cn.toml`: 2025 and 2026).
    pub fn china() -> HolidayCalendar {
        static CHINA: OnceLock<HolidayCalendar> = OnceLock::new();
        CHINA
            .get_or_init(|| {
                HolidayCalendar::from_toml_str(CHINA_TOML).expect(
                    "the embedded calendars/cn.toml is valid (checked by the crate's tests)",
                )
            })
            .clone()
    }

    /// An empty calendar: covers no year.
    pub fn empty() -> HolidayCalendar {
        HolidayCalendar {
            years: BTreeMap::new(),
            off: BTreeMap::new(),
            working: BTreeMap::new(),
        }
    }

    /// Parses and validates calendar data (the format of `calendars/cn.toml`).
    ///
    /// Refused with the offending field named: unknown or missing fields, a year key that is not a year, a value that
    /// is not a plain date, `from` after `to`, a date far from its year, an adjusted working day that is not a Saturday
    /// or Sunday, a date that is both a day off and a working day, a day off listed twice.
    pub fn from_toml_str(text: &str) -> Result<HolidayCalendar, CalendarError> {
        let raw: RawCalendar =
            toml::from_str(text).map_err(|e| CalendarError::Parse(e.message().to_owned()))?;
        let mut calendar = HolidayCalendar::empty();
        for (key, year_data) in &raw.years {
            let year_field = format!("years.{key}");
            let year: i32 = key
                .parse()
                .ok()
                .filter(|y| (1949..=9999).contains(y))
                .ok_or_else(|| invalid(&year_field, "not a year (four digits, e.g. 2027)"))?;
            if year_data.source.trim().is_empty() {
                return Err(invalid(
                    format!("{year_field}.source"),
                    "empty: name the notice the dates come from",
                ));
            }
            calendar.years.insert(year, year_data.source.clone());
            let near = |date: Date, field: &str| -> Result<Date, CalendarError> {
                if (date.year() - year).abs() > 1 {
                    Err(invalid(
                        field,
                        format!("{date} is not in or next to {year}"),
                    ))
                } else {
                    Ok(date)
                }
            };
            for (i, holiday) in year_data.holidays.iter().enumerate() {
                let field = format!("{year_field}.holidays[{i}]");
                if holiday.name.trim().is_empty() {
                    return Err(invalid(format!("{field}.name"), "empty"));
                }
                let from = near(
                    local_date(&holiday.from, &format!("{field}.from"))?,
                    &format!("{field}.from"),
                )?;
                let to = near(
                    local_date(&holiday.to, &format!("{field}.to"))?,
                    &format!("{field}.to"),
                )?;
                if from > to {
                    return Err(invalid(
                        format!("{field}.to"),
                        format!("{to} is before `from` {from}"),
                    ));
                }
                if (to - from).whole_days() >= MAX_HOLIDAY_DAYS {
                    return Err(invalid(
                        format!("{field}.to"),
                        format!("{from}..{to} is longer than {MAX_HOLIDAY_DAYS} days"),
                    ));
                }
                let mut day = from;
                loop {
                    if let Some(other) = calendar.off.insert(day, holiday.name.clone()) {
                        return Err(invalid(
                            &field,
                            format!("{day} is already a day off of {other}"),
                        ));
                    }
                    if day == to {
                        break;
                    }
                    day = day.next_day().ok_or(CalendarError::OutOfRange)?;
                }
                for (j, work) in holiday.work.iter().enumerate() {
                    let work_field = format!("{field}.work[{j}]");
                    let date = near(local_date(work, &work_field)?, &work_field)?;
                    if !is_weekend(date) {
                        return Err(invalid(
                            work_field,
                            format!(
                                "{date} is a {}; an adjusted working day is a Saturday or Sunday",
                                date.weekday()
                            ),
                        ));
                    }
                    if calendar
                        .working
                        .insert(date, holiday.name.clone())
                        .is_some()
                    {
                        return Err(invalid(
                            work_field,
                            format!("{date} is listed as a working day twice"),
                        ));
                    }
                }
            }
        }
        calendar.check_disjoint()?;
        Ok(calendar)
    }

    /// Joins two calendars, e.g. the shipped one and a file with a new year. A year in both is refused.
    pub fn with(mut self, other: HolidayCalendar) -> Result<HolidayCalendar, CalendarError> {
        for (year, source) in other.years {
            if self.years.contains_key(&year) {
                return Err(invalid(
                    format!("years.{year}"),
                    "the year is already in the calendar",
                ));
            }
            self.years.insert(year, source);
        }
        for (date, name) in other.off {
            if let Some(existing) = self.off.insert(date, name) {
                return Err(invalid(
                    "holidays",
                    format!("{date} is already a day off of {existing}"),
                ));
            }
        }
        for (date, name) in other.working {
            if self.working.insert(date, name).is_some() {
                return Err(invalid(
                    "work",
                    format!("{date} is listed as a working day twice"),
                ));
            }
        }
        self.check_disjoint()?;
        Ok(self)
    }

    fn check_disjoint(&self) -> Result<(), CalendarError> {
        for (date, name) in &self.working {
            if let Some(off) = self.off.get(date) {
                return Err(invalid(
                    "work",
                    format!(
                        "{date} is both a day off of {off} and an adjusted working day of {name}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the calendar has data for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The covered years, ascending.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The notice a covered year's data comes from.
    pub fn source(&self, year: i32) -> Option<&str> {
        self.years.get(&year).map(String::as_str)
    }

    /// What `date` is. Errors when its year is not covered.
    pub fn day_kind(&self, date: Date) -> Result<DayKind<'_>, CalendarError> {
        if !self.covers(date.year()) {
            return Err(CalendarError::YearNotCovered { year: date.year() });
        }
        if let Some(name) = self.working.get(&date) {
            return Ok(DayKind::AdjustedWorkingDay(name));
        }
        if let Some(name) = self.off.get(&date) {
            return Ok(DayKind::Holiday(name));
        }
        Ok(if is_weekend(date) {
            DayKind::Weekend
        } else {
            DayKind::Weekday
        })
    }

    /// Whether offices work on `date`. Errors when its year is not covered.
    pub fn is_working_day(&self, date: Date) -> Result<bool, CalendarError> {
        self.day_kind(date).map(DayKind::is_working)
    }

    /// `date` itself when it is a working day, else the first working day after it.
    pub fn working_day_on_or_after(&self, mut date: Date) -> Result<Date, CalendarError> {
        while !self.is_working_day(date)? {
            date = date.next_day().ok_or(CalendarError::OutOfRange)?;
        }
        Ok(date)
    }
}

/// 00:00 China time of the day after `date`: the end of `date`.
fn end_of_day(date: Date) -> Result<OffsetDateTime, CalendarError> {
    let next = date.next_day().ok_or(CalendarError::OutOfRange)?;
    Ok(next.midnight().assume_offset(CHINA_OFFSET))
}

/// When a statutory period started at `trigger` runs out (see the module docs for the rules). The result is in China
/// time; errors when the count touches a year the calendar does not cover.
pub fn deadline(
    calendar: &HolidayCalendar,
    trigger: OffsetDateTime,
    period: Period,
) -> Result<OffsetDateTime, CalendarError> {
    let trigger = trigger.to_offset(CHINA_OFFSET);
    match period {
        Period::Hours(n) => trigger
            .checked_add(Duration::hours(i64::from(n)))
            .ok_or(CalendarError::OutOfRange),
        Period::Days(n) => {
            let last = trigger
                .date()
                .checked_add(Duration::days(i64::from(n)))
                .ok_or(CalendarError::OutOfRange)?;
            end_of_day(calendar.working_day_on_or_after(last)?)
        }
        Period::WorkingDays(n) => {
            let mut day = trigger.date();
            for _ in 0..n {
                day = day.next_day().ok_or(CalendarError::OutOfRange)?;
                day = calendar.working_day_on_or_after(day)?;
            }
            end_of_day(day)
        }
    }
}

/// [`deadline`] over Unix microseconds (the form timestamps take in the projections).
pub fn deadline_micros(
    calendar: &HolidayCalendar,
    trigger_micros: i64,
    period: Period,
) -> Result<i64, CalendarError> {
    let trigger = OffsetDateTime::from_unix_timestamp_nanos(i128::from(trigger_micros) * 1_000)
        .map_err(|_| CalendarError::OutOfRange)?;
    let due = deadline(calendar, trigger, period)?;
    i64::try_from(due.unix_timestamp_nanos() / 1_000).map_err(|_| CalendarError::OutOfRange)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use time::macros::{date, datetime};

    fn cn() -> HolidayCalendar {
        HolidayCalendar::china()
    }

    #[test]
    fn shipped_calendar_covers_2025_and_2026_only() {
        let cn = cn();
        assert_eq!(cn.years().collect::<Vec<_>>(), vec![2025, 2026]);
        assert!(!cn.covers(2024));
        assert!(!cn.covers(2027));
        assert!(cn
            .source(2025)
            .is_some_and(|s| s.contains("国办发明电〔2024〕12号")));
        assert!(cn
            .source(2026)
            .is_some_and(|s| s.contains("国办发明电〔2025〕7号")));
    }

    #[test]
    fn shipped_calendar_has_the_notices_days_off_and_adjusted_working_days() {
        let cn = cn();
        // Days off per year: 2025: 1 + 8 + 3 + 5 + 3 + 8; 2026: 3 + 9 + 3 + 5 + 3 + 3 + 7.
        let off_in = |y: i32| cn.off.keys().filter(|d| d.year() == y).count();
        assert_eq!(off_in(2025), 28);
        assert_eq!(off_in(2026), 33);
        let working: Vec<Date> = cn.working.keys().copied().collect();
        assert_eq!(
            working,
            vec![
                date!(2025 - 01 - 26),
                date!(2025 - 02 - 08),
                date!(2025 - 04 - 27),
                date!(2025 - 09 - 28),
                date!(2025 - 10 - 11),
                date!(2026 - 01 - 04),
                date!(2026 - 02 - 14),
                date!(2026 - 02 - 28),
                date!(2026 - 05 - 09),
                date!(2026 - 09 - 20),
                date!(2026 - 10 - 10),
            ]
        );
    }

    #[test]
    fn day_kinds_follow_the_notices() {
        let cn = cn();
        let cases: &[(Date, bool)] = &[
            (date!(2025 - 01 - 01), false), // New Year, Wednesday
            (date!(2025 - 01 - 26), true),  // Sunday, adjusted working day
            (date!(2025 - 01 - 27), true),  // Monday
            (date!(2025 - 01 - 28), false), // Spring Festival eve
            (date!(2025 - 02 - 04), false), // last day of the Spring Festival holiday, Tuesday
            (date!(2025 - 02 - 05), true),
            (date!(2025 - 02 - 08), true), // Saturday, adjusted working day
            (date!(2025 - 02 - 09), false), // ordinary Sunday
            (date!(2025 - 03 - 15), false), // ordinary Saturday
            (date!(2025 - 03 - 19), true), // ordinary Wednesday
            (date!(2025 - 04 - 27), true), // Sunday, adjusted for Labour Day
            (date!(2025 - 05 - 05), false), // Labour Day holiday, Monday
            (date!(2025 - 06 - 02), false), // Dragon Boat, Monday
            (date!(2025 - 09 - 28), true), // Sunday, adjusted for National Day
            (date!(2025 - 10 - 08), false), // National Day holiday, Wednesday
            (date!(2025 - 10 - 11), true), // Saturday, adjusted
            (date!(2026 - 01 - 02), false),
            (date!(2026 - 01 - 04), true),  // Sunday, adjusted
            (date!(2026 - 02 - 14), true),  // Saturday, adjusted
            (date!(2026 - 02 - 23), false), // Monday, last day of the Spring Festival holiday
            (date!(2026 - 02 - 28), true),  // Saturday, adjusted
            (date!(2026 - 05 - 09), true),
            (date!(2026 - 09 - 25), false), // Mid-Autumn, Friday
            (date!(2026 - 10 - 07), false),
            (date!(2026 - 10 - 10), true),
        ];
        for &(day, working) in cases {
            assert_eq!(cn.is_working_day(day), Ok(working), "{day}");
        }
        assert_eq!(
            cn.day_kind(date!(2025 - 02 - 08)),
            Ok(DayKind::AdjustedWorkingDay("春节 Spring Festival"))
        );
        assert_eq!(cn.day_kind(date!(2025 - 02 - 09)), Ok(DayKind::Weekend));
    }

    #[test]
    fn asking_about_an_uncovered_year_is_an_error() {
        let cn = cn();
        assert_eq!(
            cn.is_working_day(date!(2027 - 03 - 03)),
            Err(CalendarError::YearNotCovered { year: 2027 })
        );
        assert_eq!(
            cn.is_working_day(date!(2024 - 12 - 31)),
            Err(CalendarError::YearNotCovered { year: 2024 })
        );
        // A count running into 2027 is refused, not guessed.
        assert_eq!(
            deadline(&cn, datetime!(2026-12-29 10:00 +8), Period::Days(3)),
            Err(CalendarError::YearNotCovered { year: 2027 })
        );
        assert!(HolidayCalendar::empty()
            .is_working_day(date!(2025 - 03 - 03))
            .is_err());
    }

    /// (trigger, period, deadline) in China time.
    const TABLE: &[(OffsetDateTime, Period, OffsetDateTime)] = &[
        // --- 3 days over ordinary weeks
        (
            datetime!(2025-03-10 10:00 +8),
            Period::Days(3),
            datetime!(2025-03-14 00:00 +8),
        ), // Mon → Thu
        (
            datetime!(2025-03-11 23:59 +8),
            Period::Days(3),
            datetime!(2025-03-15 00:00 +8),
        ), // Tue → Fri
        (
            datetime!(2025-03-12 09:00 +8),
            Period::Days(3),
            datetime!(2025-03-18 00:00 +8),
        ), // Wed → Sat → Mon
        (
            datetime!(2025-03-13 09:00 +8),
            Period::Days(3),
            datetime!(2025-03-18 00:00 +8),
        ), // Thu → Sun → Mon
        (
            datetime!(2025-03-14 09:00 +8),
            Period::Days(3),
            datetime!(2025-03-18 00:00 +8),
        ), // Fri → Mon
        (
            datetime!(2025-03-15 09:00 +8),
            Period::Days(3),
            datetime!(2025-03-19 00:00 +8),
        ), // Sat → Tue
        // China's date, not UTC's: 2025-03-10 16:00 UTC is already Tuesday 11 March in China.
        (
            datetime!(2025-03-10 15:59 UTC),
            Period::Days(3),
            datetime!(2025-03-14 00:00 +8),
        ),
        (
            datetime!(2025-03-10 16:00 UTC),
            Period::Days(3),
            datetime!(2025-03-15 00:00 +8),
        ),
        // --- Spring Festival 2025 (off 28 Jan – 4 Feb; work Sun 26 Jan, Sat 8 Feb)
        (
            datetime!(2025-01-23 09:00 +8),
            Period::Days(3),
            datetime!(2025-01-27 00:00 +8),
        ), // day 3 Sun 26 Jan works
        (
            datetime!(2025-01-25 10:00 +8),
            Period::Days(3),
            datetime!(2025-02-06 00:00 +8),
        ), // 28 Jan off → 5 Feb
        (
            datetime!(2025-01-27 18:00 +8),
            Period::Days(3),
            datetime!(2025-02-06 00:00 +8),
        ), // 30 Jan off → 5 Feb
        (
            datetime!(2025-02-01 10:00 +8),
            Period::Days(3),
            datetime!(2025-02-06 00:00 +8),
        ), // 4 Feb off → Wed 5 Feb
        (
            datetime!(2025-02-03 10:00 +8),
            Period::Days(3),
            datetime!(2025-02-07 00:00 +8),
        ),
        (
            datetime!(2025-02-05 10:00 +8),
            Period::Days(3),
            datetime!(2025-02-09 00:00 +8),
        ), // Sat 8 Feb works
        (
            datetime!(2025-02-06 10:00 +8),
            Period::Days(3),
            datetime!(2025-02-11 00:00 +8),
        ), // Sun 9 Feb → Mon 10
        // --- National Day 2025 (off 1–8 Oct; work Sun 28 Sep, Sat 11 Oct)
        (
            datetime!(2025-09-25 10:00 +8),
            Period::Days(3),
            datetime!(2025-09-29 00:00 +8),
        ), // Sun 28 Sep works
        (
            datetime!(2025-09-28 10:00 +8),
            Period::Days(3),
            datetime!(2025-10-10 00:00 +8),
        ), // 1 Oct off → Thu 9 Oct
        (
            datetime!(2025-09-30 10:00 +8),
            Period::Days(3),
            datetime!(2025-10-10 00:00 +8),
        ),
        (
            datetime!(2025-10-08 10:00 +8),
            Period::Days(3),
            datetime!(2025-10-12 00:00 +8),
        ), // Sat 11 Oct works
        (
            datetime!(2025-10-09 10:00 +8),
            Period::Days(3),
            datetime!(2025-10-14 00:00 +8),
        ), // Sun 12 Oct → Mon 13
        // --- New Year 2026 across the year boundary (off 1–3 Jan; work Sun 4 Jan)
        (
            datetime!(2025-12-30 10:00 +8),
            Period::Days(3),
            datetime!(2026-01-05 00:00 +8),
        ), // 2 Jan off → Sun 4 Jan
        // --- Spring Festival 2026 (off 15–23 Feb; work Sat 14 Feb, Sat 28 Feb)
        (
            datetime!(2026-02-11 10:00 +8),
            Period::Days(3),
            datetime!(2026-02-15 00:00 +8),
        ), // Sat 14 Feb works
        (
            datetime!(2026-02-12 10:00 +8),
            Period::Days(3),
            datetime!(2026-02-25 00:00 +8),
        ), // 15 Feb off → Tue 24
        (
            datetime!(2026-02-20 10:00 +8),
            Period::Days(3),
            datetime!(2026-02-25 00:00 +8),
        ), // 23 Feb off → Tue 24
        (
            datetime!(2026-02-25 10:00 +8),
            Period::Days(3),
            datetime!(2026-03-01 00:00 +8),
        ), // Sat 28 Feb works
        // --- National Day 2026 (Mid-Autumn off 25–27 Sep; National Day off 1–7 Oct; work Sun 20 Sep, Sat 10 Oct)
        (
            datetime!(2026-09-17 10:00 +8),
            Period::Days(3),
            datetime!(2026-09-21 00:00 +8),
        ), // Sun 20 Sep works
        (
            datetime!(2026-09-22 10:00 +8),
            Period::Days(3),
            datetime!(2026-09-29 00:00 +8),
        ), // Fri 25 Sep off → Mon 28
        (
            datetime!(2026-09-28 10:00 +8),
            Period::Days(3),
            datetime!(2026-10-09 00:00 +8),
        ), // 1 Oct off → Thu 8 Oct
        (
            datetime!(2026-10-07 10:00 +8),
            Period::Days(3),
            datetime!(2026-10-11 00:00 +8),
        ), // Sat 10 Oct works
        // --- 24 hours: exactly, holidays or not
        (
            datetime!(2025-01-27 10:00 +8),
            Period::Hours(24),
            datetime!(2025-01-28 10:00 +8),
        ),
        (
            datetime!(2025-09-30 23:30 +8),
            Period::Hours(24),
            datetime!(2025-10-01 23:30 +8),
        ),
        (
            datetime!(2026-02-14 08:15 UTC),
            Period::Hours(24),
            datetime!(2026-02-15 16:15 +8),
        ),
        // --- working days
        (
            datetime!(2025-03-10 10:00 +8),
            Period::WorkingDays(7),
            datetime!(2025-03-20 00:00 +8),
        ),
        // Fri 24 Jan 2025: Sun 26, Mon 27, (28 Jan – 4 Feb off) Wed 5, Thu 6, Fri 7, Sat 8, (Sun 9) Mon 10 Feb.
        (
            datetime!(2025-01-24 10:00 +8),
            Period::WorkingDays(7),
            datetime!(2025-02-11 00:00 +8),
        ),
        // Fri 26 Sep 2025: Sun 28, Mon 29, Tue 30 Sep.
        (
            datetime!(2025-09-26 10:00 +8),
            Period::WorkingDays(3),
            datetime!(2025-10-01 00:00 +8),
        ),
        (
            datetime!(2025-09-30 10:00 +8),
            Period::WorkingDays(1),
            datetime!(2025-10-10 00:00 +8),
        ),
        // Thu 12 Feb 2026: Fri 13, Sat 14, (15–23 off) Tue 24, Wed 25, Thu 26, Fri 27, Sat 28 Feb.
        (
            datetime!(2026-02-12 10:00 +8),
            Period::WorkingDays(7),
            datetime!(2026-03-01 00:00 +8),
        ),
        // Tue 29 Sep 2026: Wed 30 Sep, (1–7 Oct off) Thu 8, Fri 9, Sat 10 Oct.
        (
            datetime!(2026-09-29 10:00 +8),
            Period::WorkingDays(4),
            datetime!(2026-10-11 00:00 +8),
        ),
    ];

    #[test]
    fn deadline_table() {
        let cn = cn();
        for &(trigger, period, expected) in TABLE {
            let due = deadline(&cn, trigger, period);
            assert_eq!(due, Ok(expected), "{trigger} + {period}");
            assert_eq!(due.map(|d| d.offset()), Ok(CHINA_OFFSET));
        }
    }

    #[test]
    fn deadline_in_micros_agrees() {
        let cn = cn();
        for &(trigger, period, expected) in TABLE {
            let micros = i64::try_from(trigger.unix_timestamp_nanos() / 1_000).expect("in range");
            let expected =
                i64::try_from(expected.unix_timestamp_nanos() / 1_000).expect("in range");
            assert_eq!(
                deadline_micros(&cn, micros, period),
                Ok(expected),
                "{trigger} + {period}"
            );
        }
    }

    #[test]
    fn hours_need_no_calendar() {
        let due = deadline(
            &HolidayCalendar::empty(),
            datetime!(2030-01-01 00:00 +8),
            Period::Hours(24),
        );
        assert_eq!(due, Ok(datetime!(2030-01-02 00:00 +8)));
    }

    const GOOD_YEAR: &str = r#"
[years.2027]
source = "a notice"
[[years.2027.holidays]]
name = "New Year"
from = 2027-01-01
to = 2027-01-03
work = []
"#;

    fn error_of(text: &str) -> CalendarError {
        HolidayCalendar::from_toml_str(text).expect_err("the data is invalid")
    }

    #[test]
    fn a_new_year_loads_from_data_and_joins_the_shipped_calendar() {
        let next = HolidayCalendar::from_toml_str(GOOD_YEAR).expect("valid");
        let joined = cn().with(next).expect("disjoint");
        assert!(joined.covers(2027));
        assert_eq!(joined.is_working_day(date!(2027 - 01 - 01)), Ok(false));
        assert_eq!(
            deadline(&joined, datetime!(2026-12-29 10:00 +8), Period::Days(3)),
            Ok(datetime!(2027-01-05 00:00 +8))
        );
        // The same year twice is refused.
        let again = HolidayCalendar::from_toml_str(GOOD_YEAR).expect("valid");
        let twice = joined.with(again);
        assert!(
            matches!(twice, Err(CalendarError::Invalid { ref field, .. }) if field == "years.2027")
        );
    }

    #[test]
    fn unknown_field_is_refused_naming_it() {
        let text = GOOD_YEAR.replace("work = []", "wrok = []");
        match error_of(&text) {
            CalendarError::Parse(message) => assert!(message.contains("wrok"), "{message}"),
            other => panic!("unexpected {other:?}"),
        }
        let text = GOOD_YEAR.replace("source", "sauce");
        assert!(matches!(error_of(&text), CalendarError::Parse(m) if m.contains("sauce")));
    }

    #[test]
    fn adjusted_working_day_on_a_weekday_is_refused() {
        // 2027-01-04 is a Monday.
        let text = GOOD_YEAR.replace("work = []", "work = [2027-01-04]");
        match error_of(&text) {
            CalendarError::Invalid { field, why } => {
                assert_eq!(field, "years.2027.holidays[0].work[0]");
                assert!(why.contains("Monday"), "{why}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_date_both_off_and_working_is_refused() {
        // 2027-01-02 is a Saturday inside the holiday.
        let text = GOOD_YEAR.replace("work = []", "work = [2027-01-02]");
        match error_of(&text) {
            CalendarError::Invalid { why, .. } => assert!(why.contains("both a day off"), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_dates_and_years_are_refused_naming_the_field() {
        let cases: &[(&str, &str)] = &[
            ("to = 2027-01-03", "to = 2026-12-31"), // before from
            ("to = 2027-01-03", "to = 2027-03-03"), // too long
            ("from = 2027-01-01", "from = 2027-01-01T08:00:00"), // not a plain date
            ("years.2027", "years.twenty"),         // not a year
            (
                "from = 2027-01-01\nto = 2027-01-03",
                "from = 2030-01-01\nto = 2030-01-03",
            ), // far from its year
        ];
        let fields = [
            "years.2027.holidays[0].to",
            "years.2027.holidays[0].to",
            "years.2027.holidays[0].from",
            "years.twenty",
            "years.2027.holidays[0].from",
        ];
        for ((from, to), expected) in cases.iter().zip(fields) {
            let text = GOOD_YEAR.replace(from, to);
            match error_of(&text) {
                CalendarError::Invalid { field, .. } => assert_eq!(field, expected, "{to}"),
                other => panic!("{to}: unexpected {other:?}"),
            }
        }
        // A string where a date belongs is a parse error naming the field.
        let text = GOOD_YEAR.replace("from = 2027-01-01", "from = \"2027-01-01\"");
        assert!(matches!(error_of(&text), CalendarError::Parse(_)));
    }

    #[test]
    fn a_day_off_listed_twice_is_refused() {
        let text = format!(
            "{GOOD_YEAR}\n[[years.2027.holidays]]\nname = \"again\"\nfrom = 2027-01-03\nto = 2027-01-04\n"
        );
        assert!(
            matches!(error_of(&text), CalendarError::Invalid { field, .. } if field == "years.2027.holidays[1]")
        );
    }
}
