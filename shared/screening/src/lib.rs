//! Screening (省级初筛): the twelve criteria of the Yueyang guideline (岳市监〔2024〕16号, clauses 二(一)-(七) and
//! 三(一)-(五), domain.md section 5) as data-driven rules, computed incrementally over the stream of case events.
//!
//! Owns: the [`RuleSet`] (TOML, validated, defaults in `rules.toml`); the [`Screener`] that folds one pseudonymised
//! [`CaseEvent`](caselink_proto::v1::CaseEvent) at a time into compact, bounded states behind a [`ScreeningStore`]
//! (per person a [`PersonScreening`]: facts per rule, matters, contacts, links, flags, abnormal-list figures; per shared
//! phone, address or complaint text a [`RelationState`]); [`Flag`]s that cite their clause, window, figures and
//! evidence events, raised once and grown as evidence grows; links between persons with their reasons; matters
//! (one grievance on 12315, 12345 and the petition office counted once); and [`eval`], detection quality against a
//! generated population's truth.
//!
//! Never: I/O, async, clocks or randomness; iteration order leaking into state (same input order, byte-identical
//! state); a result that depends on the order departments' records arrive in (every rule re-evaluates its predicate
//! over the facts it holds); clear personal data (it sees keys and masks only); verdicts (a flag is a suspicion for
//! the determination workflow).
//!
//! ```
//! use caselink_screening::{MemoryStore, RuleSet, Screener};
//! use caselink_proto::v1::CaseEvent;
//!
//! let screener = Screener::new(RuleSet::default());
//! let mut store = MemoryStore::new();
//! let changes = screener.apply(&mut store, &CaseEvent::default(), 1).unwrap();
//! assert!(changes.is_empty()); // no subject, nothing to screen
//! ```

mod criteria;
mod engine;
pub mod eval;
mod ids;
mod matters;
mod memory;
mod relations;
pub mod rules;
mod state;

pub use engine::{
    group_of, link_reason_text, text_fingerprint, FlagChange, RelationKey, Screener, ScreeningStore,
};
pub use ids::{id_bytes, id_string};
pub use memory::MemoryStore;
pub use relations::sharing_evidence;
pub use rules::{RuleCode, RuleSet, RuleSetError, RuleViolation, DEFAULT_RULES_TOML};
pub use state::{
    Appeal, Contact, ContactKind, Count, Evidence, Figure, Figures, FindingKind, Flag, Intake,
    IntakeKind, Link, LinkReason, Mark, MatterLink, PersonScreening, RelationFinding,
    RelationState, RelationUse,
};
