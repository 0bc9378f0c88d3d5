# ldk-dst: deterministic simulation testing of LDK nodes across restarts.
# Both targets use the dev profile (dependencies optimised, LDK's debug assertions on);
# `make test` builds LDK once more, as the tests' dev-dependencies change feature sets.

SEED ?= 1
SCENARIO ?= trampoline-receive
BENCH_SEEDS ?= 50

.PHONY: run json repro test snapshots check-public-api bench fmt

## One seeded simulation with a readable report (SEED=, SCENARIO= override).
run:
	@cargo run -p harness --bin ldk-dst -- run --scenario $(SCENARIO) --seed $(SEED)

## The same run as one JSON object.
json:
	@cargo run -p harness --bin ldk-dst -- run --scenario $(SCENARIO) --seed $(SEED) --json

## The same run again with its full trace (FIXTURE=path replays a fixture instead).
repro:
	@if [ -n "$(FIXTURE)" ]; then cargo run -p harness --bin ldk-dst -- repro --fixture $(FIXTURE); \
	else cargo run -p harness --bin ldk-dst -- repro --scenario $(SCENARIO) --seed $(SEED); fi

## The test suite. INSTA_UPDATE=no: a missing or changed snapshot under snapshots/ fails
## (with a diff) and nothing is written.
test:
	INSTA_UPDATE=no cargo nextest run --workspace

## Rewrite the outcome snapshots under snapshots/ from the current code; review with
## `git diff snapshots/` and commit what is intended.
snapshots:
	INSTA_UPDATE=always cargo nextest run -p harness --test snapshots

## Compile without --cfg fuzzing, so only LDK's public API is used (separate target dir:
## RUSTFLAGS replaces .cargo/config.toml's flags and would otherwise thrash the cache).
check-public-api:
	RUSTFLAGS="-C debuginfo=0" CARGO_TARGET_DIR=target/public-api cargo check --workspace --all-targets

## Seeds per minute in release mode over BENCH_SEEDS seeds, one process per seed, run one
## after another (wall clock of the whole batch, swarm fault plans).
bench:
	cargo build --release -p harness --bin ldk-dst
	@start=$$(date +%s%N); failed=0; \
	for s in $$(seq 1 $(BENCH_SEEDS)); do \
	  ./target/release/ldk-dst run --scenario $(SCENARIO) --seed $$s --json > /dev/null || { echo "seed $$s failed"; failed=$$((failed+1)); }; \
	done; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	echo "$(BENCH_SEEDS) seeds in $$ms ms: $$(( $(BENCH_SEEDS) * 60000 / (ms + 1) )) seeds/min (release, sequential), $$failed failed"

fmt:
	cargo fmt --all
