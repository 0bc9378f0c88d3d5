//! What is run and how it is judged: scenarios, the oracle, the outcome report.
//!
//! Data flows one way: seed → [`scenario`] (drives `sim`'s world) → observations →
//! [`oracle`] (its [`oracle::evidence`], then one checker per invariant) → [`report`];
//! [`findings`] names the violations that are kept findings of [`fixture`]s.
#![deny(missing_docs)]

pub mod bench;
pub mod bucket;
pub mod coverage;
pub mod diff;
pub mod faults;
pub mod findings;
pub mod fixture;
pub mod oracle;
pub mod outcome;
pub mod reach_actions;
pub mod reach_chain;
pub mod reach_payments;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod soak;
pub mod sweep;
