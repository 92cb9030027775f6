//! The workflows' pure rules: what a criminal referral 行刑衔接 may do next, and when it is due.
//!
//! Owns: the holiday calendar (China's official schedule as data, `calendars/cn.toml`) and statutory day counting
//! ([`calendar`]); the criminal-referral aggregate of State Council Order No. 310 — its states, moves, who may make
//! them, the event each move becomes, the fold of events into state, and each state's clock ([`referral`]). The events
//! are the generated `caselink.v1.ReferralEvent`, so the service publishes what [`referral::decide`] returns as is.
//!
//! Never: I/O of any kind (no bus, no store, no files, no network, no logging), and never reads the wall clock: `now`
//! and the calendar are always arguments, so tests set them. Persistence, the expected-version append on the bus, the
//! gRPC service, live leads and overdue alerts are built on top of this crate by the linkage service.
//!
//! ```
//! use caselink_workflow::calendar::HolidayCalendar;
//! use caselink_workflow::referral::{decide, evolve, Actor, Command, ReferralDrafted, ReferralState};
//! use time::macros::datetime;
//!
//! let calendar = HolidayCalendar::china();
//! let staff = Actor::market_staff("market", "staff-7");
//! let draft = Command::Draft(ReferralDrafted {
//!     case_report: "Planted expired goods to extort the shop".into(),
//!     evidence_list: vec!["purchase receipts".into()],
//!     person_keys: vec!["ab".repeat(32)],
//!     region_code: "330106".into(),
//!     ..Default::default()
//! });
//! let now = datetime!(2025-01-25 10:00 +8);
//! let event = decide("ref-1", None, &draft, &staff, now, &calendar).unwrap();
//! let referral = evolve(None, &event);
//! assert_eq!((referral.state, referral.version), (ReferralState::Drafted, 1));
//! // The head has 3 days; day 3 is in the Spring Festival holiday, so the end of the first working day after it.
//! let due = referral.due(&calendar).unwrap().unwrap();
//! assert_eq!(due.due_at, datetime!(2025-02-06 00:00 +8));
//! ```

pub mod calendar;
pub mod determination;
pub mod referral;
