fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let r = harness::scenario::run("trampoline-receive", seed, &Default::default()).unwrap();
    for o in r.world.observations() {
        println!("{:>8} {} {:?}", o.at_ms, r.world.name(o.node), o.event);
    }
    for rr in r.world.restarts() { println!("{rr:?}"); }
    println!("healed={} digest={}", r.healed, r.world.trace_digest());
}
