# ldk-dst: deterministic simulation testing of LDK nodes across restarts.
# Both targets use the dev profile (dependencies optimised, LDK's debug assertions on);
# `make test` builds LDK once more, as the tests' dev-dependencies change feature sets.

SEED ?= 1
SCENARIO ?= trampoline-receive
BENCH_SEEDS ?= 50

# The LDK under test: the release pinned in Cargo.toml, or LDK=<checkout> (a rust-lightning
# checkout or its lightning crate) or LDK_VERSION=<0.3.x release>, for run, json, repro, test
# and snapshots. harness/scripts/with-ldk builds those in a workspace and target directory of
# their own under target/ldk/ (no file of the project is edited).
LDK ?=
LDK_VERSION ?=
export LDK LDK_VERSION
CARGO := harness/scripts/with-ldk

# make diff: LDK_A (empty: the pinned release) against LDK_B, each a version or a path.
LDK_A ?=
LDK_B ?=
DIFF_SEEDS ?= 1..200
export LDK_A LDK_B DIFF_SEEDS SCENARIO

.PHONY: run json repro coverage test snapshots check-public-api check-ldk-override diff bench fmt

## One seeded simulation with a readable report (SEED=, SCENARIO= override).
run:
	@$(CARGO) run -p harness --bin ldk-dst -- run --scenario $(SCENARIO) --seed $(SEED)

## The same run as one JSON object.
json:
	@$(CARGO) run -p harness --bin ldk-dst -- run --scenario $(SCENARIO) --seed $(SEED) --json

## The same run again with its full trace (FIXTURE=path replays a fixture instead).
repro:
	@if [ -n "$(FIXTURE)" ]; then $(CARGO) run -p harness --bin ldk-dst -- repro --fixture $(if $(LDK)$(LDK_VERSION),$(abspath $(FIXTURE)),$(FIXTURE)); \
	else $(CARGO) run -p harness --bin ldk-dst -- repro --scenario $(SCENARIO) --seed $(SEED); fi

## LDK log-site coverage over a seed range (release build): per LDK source file the sites
## hit and the sites never hit with their message text (SCENARIO=, COVERAGE_SEEDS=).
COVERAGE_SEEDS ?= 1..100
coverage:
	@$(CARGO) run --release -q -p harness --bin ldk-dst -- coverage --scenario $(SCENARIO) --seeds $(COVERAGE_SEEDS)

## Crash-point sweep of one node (release build): SCENARIO=, NODE=, SWEEP_ARGS= (e.g.
## --payment 0 --persistence async-kv).
NODE ?= C
SWEEP_ARGS ?=
.PHONY: sweep
sweep:
	@$(CARGO) run --release -q -p harness --bin ldk-dst -- sweep --scenario $(SCENARIO) --node $(NODE) $(SWEEP_ARGS)

## The test suite. INSTA_UPDATE=no: a missing or changed snapshot under snapshots/ fails
## (with a diff) and nothing is written.
test:
	INSTA_UPDATE=no $(CARGO) nextest run --workspace

## Rewrite the outcome snapshots under snapshots/ from the current code; review with
## `git diff snapshots/` and commit what is intended.
snapshots:
	@if [ -n "$(LDK)$(LDK_VERSION)" ]; then echo "make snapshots: refusing to rewrite the project's snapshots from another LDK build; make test LDK=... shows what differs" >&2; exit 2; fi
	INSTA_UPDATE=always cargo nextest run -p harness --test snapshots

## Compile without --cfg fuzzing, so only LDK's public API is used (separate target dir:
## RUSTFLAGS replaces .cargo/config.toml's flags and would otherwise thrash the cache).
check-public-api:
	RUSTFLAGS="-C debuginfo=0" CARGO_TARGET_DIR=target/public-api cargo check --workspace --all-targets

## The LDK override works: builds ldk-dst against the pinned release's own source in cargo's
## registry (found through cargo metadata) as if it were a local checkout, and checks that the
## report's header names that source (CI runs this).
check-ldk-override:
	@src=$$(cargo metadata --format-version 1 | tr ',' '\n' | sed -n 's|.*"manifest_path":"\(.*/lightning-0\.3[^/]*\)/Cargo.toml".*|\1|p' | head -n1); \
	test -n "$$src" || { echo "lightning's source not found through cargo metadata" >&2; exit 1; }; \
	echo "LDK=$$src"; mkdir -p target; \
	LDK="$$src" harness/scripts/with-ldk run -q -p harness --bin ldk-dst -- run --seed 1 --json > target/ldk-override.json || test $$? -eq 1; \
	grep -q "\"ldk_source\": \"$$src (not a git checkout)\"" target/ldk-override.json \
	  || { echo "the report does not name $$src as its LDK source:" >&2; grep ldk_ target/ldk-override.json >&2; exit 1; }; \
	echo "ok: the report names $$src"

## The same seeds on two LDK builds (LDK_B=<version or path>, LDK_A likewise, empty: pinned;
## SCENARIO=, DIFF_SEEDS=1..200): identical traces, first divergences, verdicts that differ.
diff:
	@harness/scripts/ldk-diff

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
