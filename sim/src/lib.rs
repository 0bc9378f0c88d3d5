//! The deterministic world that real LDK nodes run in.
//!
//! Mechanics only, no scenario or verdict: seeded randomness ([`rng`]), the simulated
//! clock ([`clock`]), the fake network ([`net`]), the fake disk ([`disk`]), the fake chain
//! ([`chain`]), and the node adapter ([`node`]), the only module that calls LDK. The
//! [`world`] module ties them together into one event loop that the harness drives.
#![deny(missing_docs)]

pub mod chain;
pub mod chain_verify;
pub mod clock;
pub mod disk;
pub mod faults;
pub mod net;
pub mod node;
pub mod rng;
pub mod trace;
pub mod world;

/// The text of a caught panic (`std::panic::catch_unwind`'s payload), for reports.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into())
}

thread_local! {
    static LAST_PANIC_FILE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Installs (once per process) a panic hook that remembers, per thread, the source file of
/// the last panic, then hands over to the hook that was there before (which prints it as
/// usual). [`take_last_panic_file`] reads it, so a caught panic can be told apart: inside
/// LDK or one of its dependencies (a finding), or in this workspace's own code (a harness
/// bug that must not be reported as LDK's).
pub fn remember_panic_locations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map(|l| l.file().to_string());
            LAST_PANIC_FILE.with(|f| *f.borrow_mut() = file);
            previous(info);
        }));
    });
}

/// The source file of this thread's last panic since the last call, if
/// [`remember_panic_locations`] was installed.
pub fn take_last_panic_file() -> Option<String> {
    LAST_PANIC_FILE.with(|f| f.borrow_mut().take())
}

/// Runs `f`, catching a panic inside LDK (or one of its dependencies) as `Err(message)`: such
/// a panic is a finding (`DESIGN.md`, decision 7). A panic in this workspace's own
/// code ([`is_own_code`]) is a harness bug and goes on unwinding, its location still
/// remembered for the next catcher (`resume_unwind` does not call the hook again).
pub fn catch_ldk_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    remember_panic_locations();
    take_last_panic_file();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        if let Some(file) = take_last_panic_file().filter(|file| is_own_code(file)) {
            LAST_PANIC_FILE.with(|f| *f.borrow_mut() = Some(file));
            std::panic::resume_unwind(payload);
        }
        panic_message(&*payload)
    })
}

/// Whether a panic at source file `file` (as [`take_last_panic_file`] gives it) is in this
/// workspace's own code (`sim/` or `harness/`), rather than in LDK or another dependency.
pub fn is_own_code(file: &str) -> bool {
    let f = file.trim_start_matches("./");
    f.starts_with("sim/") || f.starts_with("harness/") || f.contains("/sim/src/") || f.contains("/harness/src/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_code_is_told_from_ldks() {
        assert!(super::is_own_code("sim/src/world.rs"));
        assert!(super::is_own_code("./harness/src/scenario.rs"));
        assert!(super::is_own_code("/work/main/target/ldk/x/ws/sim/src/node.rs"));
        let ldk = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lightning-0.3.0-rc3/src/chain/channelmonitor.rs";
        assert!(!super::is_own_code(ldk));
        assert!(!super::is_own_code("/home/dev/rust-lightning/lightning/src/ln/channelmanager.rs"));
    }

    #[test]
    fn only_panics_outside_our_own_code_are_caught_as_ldks() {
        // A panic at a location in our own code keeps unwinding through catch_ldk_panic.
        let ours = std::panic::catch_unwind(|| super::catch_ldk_panic(|| panic!("a harness bug")));
        assert!(ours.is_err(), "our own panic is not reported as LDK's");
        // The next catcher (ldk-dst's exit code) still learns it was ours.
        assert_eq!(super::take_last_panic_file().as_deref(), Some("sim/src/lib.rs"));
        assert_eq!(super::catch_ldk_panic(|| 7), Ok(7));
        // A panic inside a dependency (here rust-bitcoin's amount arithmetic) is caught.
        let theirs = super::catch_ldk_panic(|| bitcoin::Amount::MAX_MONEY * 1_000_000_000);
        assert!(theirs.is_err_and(|m| !m.is_empty()));
    }

    #[test]
    fn the_hook_remembers_where_a_caught_panic_was() {
        super::remember_panic_locations();
        super::take_last_panic_file();
        let caught = std::panic::catch_unwind(|| panic!("planted"));
        assert!(caught.is_err());
        assert_eq!(super::take_last_panic_file().as_deref(), Some("sim/src/lib.rs"));
        assert_eq!(super::take_last_panic_file(), None, "taken once");
    }
}
