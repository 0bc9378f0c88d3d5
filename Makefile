# ldk-dst: deterministic simulation testing of LDK nodes across restarts.
# Both targets use the dev profile (dependencies optimised, LDK's debug assertions on);
# `make test` builds LDK once more, as the tests' dev-dependencies change feature sets.

SEED ?= 1
SCENARIO ?= trampoline-receive

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

.PHONY: run json repro coverage test snapshots check-public-api check-ldk-override diff bench fmt build-release soak soak-merge

## The fast mode (FAST=1): LDK and secp256k1 built with `--cfg secp256k1_fuzz` besides
## `--cfg fuzzing`, as LDK's own fuzzers build them: signatures become cheap fakes, so the fake
## chain checks no scripts or signatures, and a run costs well under half the CPU. Built in a
## target directory of its own (RUSTFLAGS replaces .cargo/config.toml's flags, so both are
## given, and a shared directory would thrash the normal cache). A finding of the fast mode is
## confirmed with the normal build. Targets that run release binaries use $(DST_BIN) after
## `build-release`; FAST=1 selects the fast binary for both. Not with LDK=/LDK_VERSION=.
FAST ?=
FAST_RUSTFLAGS := --cfg fuzzing --cfg secp256k1_fuzz
FAST_TARGET_DIR := target/fast
FAST_BIN := $(FAST_TARGET_DIR)/release/ldk-dst
# The normal release binary (the LDK override's own target directory with LDK=/LDK_VERSION=;
# evaluated only where used).
NORMAL_BIN = $(if $(LDK)$(LDK_VERSION),$(shell harness/scripts/with-ldk --target-dir)/release/ldk-dst,target/release/ldk-dst)
IS_FAST := $(filter-out 0,$(FAST))
DST_BIN = $(if $(IS_FAST),$(FAST_BIN),$(NORMAL_BIN))

## The release ldk-dst that FAST selects, at $(DST_BIN).
build-release:
ifneq ($(IS_FAST),)
	@if [ -n "$(LDK)$(LDK_VERSION)" ]; then echo "make: FAST=1 is not supported with LDK= or LDK_VERSION=" >&2; exit 2; fi
	RUSTFLAGS="$(FAST_RUSTFLAGS)" CARGO_TARGET_DIR=$(FAST_TARGET_DIR) cargo build --release -p harness --bin ldk-dst
else
	$(CARGO) build --release -p harness --bin ldk-dst
endif

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

## Throughput on the standard configuration (swarm plans over seeds BENCH_SEEDS, a count N
## meaning 1..N or a range A..B; each scenario in one process, seeds one after another),
## release, normal and fast mode side by side: seeds/s, succeeded payments/s, restarts/s, per
## core, and the CPU split (secp256k1, LDK, rust-bitcoin, script checks, harness) from
## `perf record` where perf works. Builds both binaries if needed.
BENCH_SEEDS ?= 40
BENCH_RANGE = $(if $(findstring ..,$(BENCH_SEEDS)),$(BENCH_SEEDS),1..$(BENCH_SEEDS))
bench:
	@$(MAKE) --no-print-directory build-release FAST=
	@if [ -z "$(LDK)$(LDK_VERSION)" ]; then $(MAKE) --no-print-directory build-release FAST=1; fi
	@$(NORMAL_BIN) bench --seeds $(BENCH_RANGE) --profile --bin $(NORMAL_BIN) \
	  $(if $(LDK)$(LDK_VERSION),,--bin $(FAST_BIN))

## Soak with the nightly defaults (release build; README "Soak"): every scenario for
## SOAK_DURATION, SOAK_JOBS children at once, into SOAK_OUT (a new directory per soak);
## SOAK_SHARD=I/N runs one shard of the seed range split over N machines, SOAK_SEEDS= the
## range (default 1..), SOAK_ARGS= more soak flags. With FAST=1 (DST_BIN a fast-mode build),
## new buckets are rerun with the normal build (--confirm-with).
SOAK_DURATION ?= 10m
SOAK_JOBS ?= $(shell nproc)
SOAK_OUT ?= target/soak/$(shell date +%Y%m%d-%H%M%S)
SOAK_SHARD ?=
SOAK_SEEDS ?=
SOAK_ARGS ?=
soak:
	@$(MAKE) --no-print-directory build-release
	@if [ -n "$(IS_FAST)" ]; then $(MAKE) --no-print-directory build-release FAST=; fi
	$(DST_BIN) soak --duration $(SOAK_DURATION) --jobs $(SOAK_JOBS) --out $(SOAK_OUT) $(if $(SOAK_SHARD),--shard $(SOAK_SHARD)) $(if $(SOAK_SEEDS),--seeds $(SOAK_SEEDS)) $(if $(IS_FAST),--confirm-with $(NORMAL_BIN)) $(SOAK_ARGS)

## Merge the summaries of several soak directories (SOAK_DIRS=, e.g. one per shard) into one;
## SOAK_MERGE_ARGS= e.g. --markdown, --json, --out FILE.
SOAK_DIRS ?=
SOAK_MERGE_ARGS ?=
soak-merge:
	@$(MAKE) --no-print-directory build-release FAST=
	$(NORMAL_BIN) soak-merge $(SOAK_DIRS) $(SOAK_MERGE_ARGS)

fmt:
	cargo fmt --all
