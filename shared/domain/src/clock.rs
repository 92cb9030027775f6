//! Time as the domain sees it: a [`Clock`] to ask (so tests can hold time still), and conversions between
//! `SystemTime` and the wire's `Timestamp`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caselink_proto::Timestamp;

/// Where "now" comes from. Services take one so that tests can use a [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time (it may go backwards).
    pub fn set(&self, now: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now(&self) -> SystemTime {
        (**self).now()
    }
}

/// The wire timestamp of a `SystemTime` (times before 1970 included).
pub fn timestamp_from_system_time(t: SystemTime) -> Timestamp {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        },
        Err(e) => {
            // Before the epoch: seconds negative, nanos still counted forward (protobuf convention).
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => Timestamp {
                    seconds: -secs,
                    nanos: 0,
                },
                n => Timestamp {
                    seconds: -secs - 1,
                    nanos: i32::try_from(1_000_000_000 - n).unwrap_or(0),
                },
            }
        }
    }
}

/// The `SystemTime` of a wire timestamp, or `None` when its nanos are out of range (0..=999,999,999) or it cannot be
/// represented.
/// Microseconds since the epoch, saturating: the order-preserving time key of projections and filters.
pub fn timestamp_micros(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(ts.nanos / 1_000))
}

pub fn system_time_from_timestamp(ts: &Timestamp) -> Option<SystemTime> {
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    let base = if ts.seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(ts.seconds.unsigned_abs()))?
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(ts.seconds.unsigned_abs()))?
    };
    base.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// RFC 3339 in UTC, e.g. `2026-11-23T02:10:01Z` (fraction only when there is one). For messages, not for parsing.
pub fn format_rfc3339(t: SystemTime) -> String {
    let ts = timestamp_from_system_time(t);
    format_timestamp(&ts)
}

/// RFC 3339 in UTC of a wire timestamp, or a plain description when it is out of range.
pub fn format_timestamp(ts: &Timestamp) -> String {
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(ts.seconds) else {
        return format!("{}s since 1970", ts.seconds);
    };
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if ts.nanos != 0 {
        s.push_str(format!(".{:09}", ts.nanos).trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// A duration the way people write it: `10m`, `90s`, `1h`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    match secs {
        0 => "0s".to_owned(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = ManualClock::new(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(5));
        assert_eq!(other.now(), start + Duration::from_secs(5));
        other.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn clocks_work_behind_arc_dyn() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(UNIX_EPOCH));
        fn read(c: impl Clock) -> SystemTime {
            c.now()
        }
        assert_eq!(read(clock), UNIX_EPOCH);
        assert!(SystemClock.now() > UNIX_EPOCH);
    }

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for (secs, nanos) in [
            (0, 0),
            (1_795_000_000, 123),
            (-1, 999_999_999),
            (-86_400, 0),
            (-5, 1),
        ] {
            let ts = Timestamp {
                seconds: secs,
                nanos,
            };
            let t = system_time_from_timestamp(&ts).unwrap();
            assert_eq!(timestamp_from_system_time(t), ts, "{secs} {nanos}");
        }
    }

    #[test]
    fn timestamps_with_nanos_out_of_range_have_no_time() {
        assert_eq!(
            system_time_from_timestamp(&Timestamp {
                seconds: 0,
                nanos: -1
            }),
            None
        );
        assert_eq!(
            system_time_from_timestamp(&Timestamp {
                seconds: 0,
                nanos: 1_000_000_000
            }),
            None
        );
    }

    #[test]
    fn formats_rfc3339_in_utc() {
        let ts = Timestamp {
            seconds: 1_795_399_801,
            nanos: 0,
        };
        assert_eq!(format_timestamp(&ts), "2026-11-23T02:10:01Z");
        let ts = Timestamp {
            seconds: 0,
            nanos: 500_000_000,
        };
        assert_eq!(format_timestamp(&ts), "1970-01-01T00:00:00.5Z");
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn formats_durations_as_people_write_them() {
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
