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

/// The text of a caught panic (`std::panic::catch_unwind`'s payload), for reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into())
}
