//! Tells the adapter which `lightning` it is built against, as a cfg: `ldk_version = "..."`
//! is the version `harness/scripts/with-ldk` found (`LDK_DST_LDK_VERSION`), or the pinned
//! release's. Code for another LDK's API shape goes behind `#[cfg(ldk_version = "...")]` in
//! the adapter (`src/node/`, mostly `translate.rs`; see the README, "Choosing the LDK under test").

/// The release pinned in Cargo.toml (`sim::node::PINNED_LDK_VERSION` says it too).
const PINNED: &str = "0.3.0-rc3";

fn main() {
    println!("cargo::rerun-if-env-changed=LDK_DST_LDK_VERSION");
    println!("cargo::rustc-check-cfg=cfg(ldk_version, values(any()))");
    let version = std::env::var("LDK_DST_LDK_VERSION").unwrap_or_else(|_| PINNED.to_string());
    println!("cargo::rustc-cfg=ldk_version=\"{version}\"");
}
