//! Read-back (decision 5): every restart reads the node back from what its disk durably
//! holds. A restart that cannot (a decode error, a missing manager, a monitor LDK refuses,
//! LDK panicking while reading or during the first startup processing) is a violation.

use super::evidence::{Evidence, Load};
use super::{Violation, ViolationCode};
use sim::node::LoadError;

/// Restarts that could not read the node back, in restart order.
pub fn check(ev: &Evidence) -> Vec<Violation> {
    ev.harness
        .restarts
        .iter()
        .filter_map(|r| {
            let Load::Failed(err) = &r.load else { return None };
            let code = match err {
                LoadError::Panicked { .. } => ViolationCode::PanickedReadingBack,
                LoadError::StartupPanicked { .. } => ViolationCode::PanickedDuringStartup,
                _ => ViolationCode::NodeUnreadable,
            };
            let message = match ldk_reason(err) {
                Some(why) => format!("restart could not read the node back from its disk: {err} (LDK logged: {why})"),
                None => format!("restart could not read the node back from its disk: {err}"),
            };
            Some(Violation::new(code, message).node(ev, r.node).at(Some(r.at_ms())))
        })
        .collect()
}

/// What LDK logged as its reason when it refused to read the manager back.
pub fn ldk_reason(err: &LoadError) -> Option<&str> {
    match err {
        LoadError::Manager { ldk_log, .. } => ldk_log.as_deref(),
        _ => None,
    }
}

/// LDK's panic message, when a restart failed with a panic.
pub fn panic_message(err: &LoadError) -> Option<&str> {
    match err {
        LoadError::Panicked { message } | LoadError::StartupPanicked { message, .. } => Some(message),
        _ => None,
    }
}
