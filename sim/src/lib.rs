//! The deterministic world that real LDK nodes run in.
//!
//! Mechanics only, no scenario or verdict: seeded randomness ([`rng`]), the simulated
//! clock ([`clock`]), the fake network ([`net`]), the fake disk ([`disk`]), the fake chain
//! ([`chain`]), and the node adapter ([`node`]), the only module that calls LDK. The
//! [`world`] module ties them together into one event loop that the harness drives.
#![deny(missing_docs)]

pub mod chain;
pub mod clock;
pub mod disk;
pub mod net;
pub mod node;
pub mod rng;
pub mod world;
