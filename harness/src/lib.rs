//! What is run and how it is judged: scenarios, the oracle, the outcome report.
//!
//! Data flows one way: seed → [`scenario`] (drives `sim`'s world) → observations →
//! [`oracle`] → [`report`].
#![deny(missing_docs)]

pub mod diff;
pub mod faults;
pub mod fixture;
pub mod oracle;
pub mod report;
pub mod scenario;
