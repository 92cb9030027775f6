//! How one filing becomes a line of records at each agency: a complaint's receipt, acceptance or rejection (within 7
//! working days), mediation and payment; a report's verification and the penalty that may follow; 12345 tickets
//! dispatched, merged or marked unfounded; disclosure requests, reconsiderations, administrative suits, petitions,
//! reports to discipline inspection; police cases and judgments. Every later record names the earlier one it answers
//! by the event id ingest will derive for it.
//!
//! Who files and why is decided elsewhere (ordinary.rs, abusive.rs, rings.rs); these functions only make the records
//! realistic and consistent.

mod appeals;
mod hotline;
mod intake;
mod market;
mod police;

pub(crate) use appeals::*;
pub(crate) use hotline::*;
pub(crate) use intake::*;
pub(crate) use market::*;
pub(crate) use police::*;
